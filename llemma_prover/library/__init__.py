"""``prove --library``: a library's own lemmas, each attempted in its file's true context.

* ``lemmas`` -- which lemmas a library has (Coq's own walk of each file, cached) and the sample;
* ``plan`` -- the files and jobs of a run (a job: one file, a few of its sampled lemmas);
* the Coq side is ``backends/coq/library_session.py``; the worker job is ``workers/library_job.py``.

See ``docs/library.md``.
"""
