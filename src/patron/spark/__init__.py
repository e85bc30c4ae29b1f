"""The batch analytics on Apache Spark: the same kernels as the embedded path, distributed over partitions."""
