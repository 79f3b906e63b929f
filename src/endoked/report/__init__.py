"""report: a self-contained HTML page (``RUN/report.html``) describing what a run did and produced."""
