"""ActivityPub's moving parts, shared by what sends to the fediverse and what hears from it.

- :mod:`~syndicate.activitypub.keys`: the actor's RSA key pair, made once, kept, rotatable;
- :mod:`~syndicate.activitypub.signatures`: HTTP signatures both ways (draft-cavage-12, RFC 9421);
- :mod:`~syndicate.activitypub.actors`: fetching another server's actor, signed, bounded, public addresses only.
"""
