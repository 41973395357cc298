"""The ``lifeboat`` command line: a thin shell over the library (entry point in :mod:`.process`)."""
