"""Headless mesh rendering (moderngl/EGL, Mesa llvmpipe on CPU) for synthetic data and report overlays."""

from .renderer import MeshRenderer, RenderResult, create_context, vertex_normals

__all__ = ["MeshRenderer", "RenderResult", "create_context", "vertex_normals"]
