{
  "targets": [
    {
      "target_name": "layerbox_sys",
      "sources": ["native/sys.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
