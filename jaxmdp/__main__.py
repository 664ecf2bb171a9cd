from jaxmdp.cli import main

raise SystemExit(main())
