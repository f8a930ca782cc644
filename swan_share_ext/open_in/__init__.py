"""Open in SWAN: a link to a notebook, a zip, a git repository or a path, opened for a user.

Reading a link (`sources`), the URL policy (`safety`), fetching (`fetch`, `git`, `archive`),
writing that keeps the user's edits (`delivery`), the run (`run`) and its HTTP side (`handlers`).
"""
