from timebank.cli import main

main()
