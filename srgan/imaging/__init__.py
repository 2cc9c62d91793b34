"""Page-image operations that the readers, the pipeline, the studies and training share.

- ``textsize``: the x-height estimator, the normalisation factor policy, exact-size resampling
- ``colour``: the colour rule, luminance/chroma split and merge, chroma upscale and error
- ``metrics``: PSNR, SSIM, consistency PSNR, the bicubic and Lanczos baselines
"""
