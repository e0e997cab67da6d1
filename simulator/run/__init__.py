"""Many dialogues under one config: settings, planning, execution, progress, the dataset
directory on disk, and branching from an existing dataset."""
