"""The embedded sync&share drive: a JupyterHub-managed service speaking the ownCloud/Nextcloud
protocols (WebDAV, chunked uploads, versions, trash, OCS shares) over the users' spaces.

Run as ``python -m swan_hub.drive``; ``swan up`` starts it. Nothing here runs inside the hub.
"""
