"""pymilter glue: the only place that knows about libmilter."""
