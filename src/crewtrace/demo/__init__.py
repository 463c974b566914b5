"""``crewtrace demo``: the offline demo crew, run under crewtrace."""
