"""Leaders' reports: summary figures for a scope and period, their text, chart and workbook."""
