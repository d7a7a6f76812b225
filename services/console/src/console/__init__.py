"""Console: the web front end for traders, citizens, merchants, operators, drivers and city admins."""
