"""Scalable kernels shared by strategies: top-k, nearest neighbours, k-center greedy,
k-means(++), HAC with a distance threshold. Numpy/faiss only; nothing above is imported."""
