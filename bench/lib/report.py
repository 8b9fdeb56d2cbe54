"""Stub: replaced below."""
def write(results, path, results_path=None):
    pass
def summary(results):
    return ""
