"""VOD processing of uploads and imports: the job queue's workers (`jobs.py`), one
job's steps on this node (`pipeline.py`), and the child process that does the
media work at a low priority (`child.py`, over `probe.py`, `plan.py`, `encode.py`,
`remux.py`)."""
