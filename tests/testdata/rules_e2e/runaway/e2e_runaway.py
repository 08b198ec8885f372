def rule(event):
    while True:
        pass
