"""Page encodings: the lean grey PNG writer (``png``, 8 down to 1 bits) and the encodings a run can store its
pages in (``codecs``: ``upscale.encoding``), shared by the page writer (srgan.pipeline) and the PDF rebuild
(srgan.pdf)."""
