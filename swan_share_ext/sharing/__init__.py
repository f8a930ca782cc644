"""Sharing from the user's server: the share backend interface, its OCS client, the handlers.

The backend (`backend`) is the seam; `ocs` speaks to the storage's OCS API; `handlers` answer HTTP.
"""
