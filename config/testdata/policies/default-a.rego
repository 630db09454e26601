package gatehouse

default large := false
