"""Moving records between stores: the export format (`.records`), reading every
record of a store (`.source`) and writing records into one (`.sink`)."""
