"""trajcast-dist: TrajCast trajectory forecasting, serial and distributed.

Data flows one way: data -> graph -> model -> dynamics -> parallel -> cli.
"""

__version__ = "0.1.0"
