"""Everything that runs dialogues: bus, roles, brains, runs and the command line."""
