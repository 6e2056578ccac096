"""The statements' own pages: the site every attribution link points to.

::

    store (revision heads, mailed editions)
        └─► layout.py    which pages exist and what each is made from (no I/O)
              └─► pages.py     Jinja2 (templates/site/): statement, listing, gone, editions, sitemap, robots
                  archive.py   a mailed edition's HTML without anyone's address or tokens
    builder.py: renders only the pages whose inputs changed, writes them atomically under site.dir
"""
