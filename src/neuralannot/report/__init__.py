"""Static HTML reports of pseudo-GT files: mesh overlays, side views, joints, error plots, metrics."""

from neuralannot.report.build import build_report

__all__ = ["build_report"]
