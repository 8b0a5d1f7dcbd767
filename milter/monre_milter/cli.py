def main(argv=None):
    print("stub")
