"""Small text helpers every stage shares: did-you-mean, shown paths, printable names, schema files."""
