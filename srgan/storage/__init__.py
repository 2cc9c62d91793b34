"""Storage: local folders and object stores behind one set of calls.

- ``files``: locations (local paths or fsspec URLs such as ``s3://bucket/prefix``): read, list, join
- ``lease``: a lock on object storage that expires by itself when its holder dies (no flock there)

Whole-object writes are ``srgan.atomic``'s.
"""
