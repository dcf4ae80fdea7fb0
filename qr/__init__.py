"""Codes on paper and screen.

`qr.render`: a QR of a URL (`qr_image`) and a captioned PNG of any code (`code_png`), Chinese set in
the WenQuanYi Micro Hei font shipped in `qr/fonts/`. `qr.sheet`: A4 PDF sheets of a batch of codes
with serial labels and crop marks (`write_sheet_pdf`, `batch_sheet_pdf`). Pure functions: no
database, no HTTP.
"""
