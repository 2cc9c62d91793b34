"""The night report (`srgan report OUT`): the records of an output read as one latest row per page,
counts, failures by cause with the retry command, plots, the pages to look at first with their pictures;
one self-contained HTML page and a one-screen summary. It reads the records and needs nothing of a run."""
