"""report: a self-contained HTML page (``RUN/report.html``) describing what a run did and produced."""

# Exams that get a page of their own in exams/ next to the report (see endoked.report.exams).
DEFAULT_MAX_EXAMS = 50
