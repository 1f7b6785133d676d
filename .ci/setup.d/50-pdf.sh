# PDF tools for the report tests (report/report_test.go): qpdf --check and
# --json (outline destinations), poppler's pdftotext, pdffonts, pdfinfo.
# Sourced by .ci/run after apt-get update.
apt-get install -y --no-install-recommends poppler-utils qpdf >/dev/null
command -v qpdf pdftotext pdffonts pdfinfo
