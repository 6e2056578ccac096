"""The operator's console: accounts and their sessions, the audit log, the figures and the actions.

``accounts.py`` keeps who may log in (Argon2id passwords, TOTP, lockouts),
their sessions and the API's bearer tokens; ``figures.py`` answers what the
dashboard and the API show; ``actions.py`` does what an admin may do, each
recorded in the audit log. The web routes (``syndicate.web.admin``) and the
``syndicate admin`` commands are thin layers over them.
"""
