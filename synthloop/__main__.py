from synthloop.cli import entry

entry()
