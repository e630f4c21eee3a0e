"""Hamilton dataflow modules, one per stage: source → download → extract → read → standardise → write."""
