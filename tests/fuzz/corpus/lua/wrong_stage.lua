tern.hook("nowhere", print)
