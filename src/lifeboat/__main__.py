from lifeboat.cli.process import run

run()
