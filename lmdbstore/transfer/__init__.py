"""Moving records between stores: the export format (:mod:`.records`), reading every
record of a store (:mod:`.source`) and writing records into one (:mod:`.sink`)."""
