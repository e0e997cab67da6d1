"""The engine of one dialogue: the event bus, the roles and their brain registry, the
runner that drives user and agent over the bus, verification, and the recorder that
turns the event stream into a dataset record.

Nothing here knows about runs of many dialogues, output formats or the command line.
"""
