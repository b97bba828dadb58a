"""`facefilter demo`: a web page over trained filters. `service` does the work (no web
framework); `app` lays it out with Gradio and serves it."""
