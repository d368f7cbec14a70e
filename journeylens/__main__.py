from journeylens.cli import main

raise SystemExit(main())
