from smartplace.cli import main

main()
