"""Trajectory analysis (paper Results and SI B): RDF, VACF/VDOS with overlap score, MSD/diffusion, temperature
statistics, potential-energy distributions and dihedral free-energy profiles; one module per observable.

`analyze(traj_paths, reference_paths, out_dir=...)` runs them all and writes plots, CSV and summary.json.
"""

from trajcast_dist.analysis.pipeline import OBSERVABLES, AnalysisSettings, analyze, format_summary

__all__ = ["OBSERVABLES", "AnalysisSettings", "analyze", "format_summary"]
