"""placeholder"""
def adapt_online_retail(raw):
    raise NotImplementedError
