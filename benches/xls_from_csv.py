#!/usr/bin/env python3
"""Writes a CSV file's rows as a BIFF8 spreadsheet (an .xls in an OLE2 container), to check
the spreadsheet cell contexts on a format version other than the bench corpus's BIFF2
`kennedy.xls`:

    pip install xlwt
    python3 benches/xls_from_csv.py ../shared/corpus/dev/csv_tmy3_greensboro_weather.csv w.xls

Numbers become NUMBER cells, anything else LABELSST cells; the first 6,000 rows and 60
columns at most (xlwt's sheets hold 65,536 rows).
"""
import csv
import sys

import xlwt

src, out = sys.argv[1], sys.argv[2]
book = xlwt.Workbook()
sheet = book.add_sheet("data")
with open(src, errors="replace", newline="") as f:
    for r, row in enumerate(csv.reader(f)):
        if r == 6000:
            break
        for c, v in enumerate(row[:60]):
            try:
                sheet.write(r, c, float(v))
            except ValueError:
                sheet.write(r, c, v)
book.save(out)
