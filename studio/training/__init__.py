"""Fine-tuning: job records and supervision (jobs.py) and the worker process, the only code that trains."""
