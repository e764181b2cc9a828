"""The parts of ``scripts/build_face_landmarks.py``: rest mesh and raster, face68, vertex sets, pictures."""
