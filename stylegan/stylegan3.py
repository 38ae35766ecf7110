class Generator:
    family = "stylegan3"
