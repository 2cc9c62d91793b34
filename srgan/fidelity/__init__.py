"""Fidelity: does the output keep what the page says? The studies and gates that judge the pipeline.

- ``gate``: OCR and PSNR per evaluation page, the promotion gate of training, native-size means
- ``sweep``: the x-height sweep, the validated text range, the default-output table
- ``cli``: ``python -m srgan.fidelity``
- ``evaluate``: ``srgan evaluate`` (originals -> bicubic LR -> model vs bicubic)
- ``ocr``: tesseract page text and character error rate
- ``textsize_study``: ``python -m srgan.fidelity.textsize_study``, the text-size effect table
- ``colour_study``: ``python -m srgan.fidelity.colour_study``, colour pages against their grey twins
"""
