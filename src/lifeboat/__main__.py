from lifeboat.cli.main import run

run()
